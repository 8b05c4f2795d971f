"""HR wire schema: SCIM 2.0 User resources (RFC 7643) carried in CloudEvents."""
