"""CRM wire schema: companies and purchases carried in CloudEvents."""
