"""One class per route group; `UCaaSClient` exposes each as an attribute."""
