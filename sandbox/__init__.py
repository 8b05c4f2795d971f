"""The UCaaS sandbox: an emulation of the UCaaS API (../shared/ucaas-api-reference.txt) with
its validation rules, error codes, auth and roles, plus fault injection."""
