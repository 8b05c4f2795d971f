"""HR wire schema: SCIM 2.0 User resources (RFC 7643) carried in CloudEvents, and the whole
population at once (a SCIM ListResponse, or a compacted topic of hr.user.* events)."""
