"""Dead-letter replay: the records refused into `<topic>.dlq`, sent back to their topic
once what refused them is mended (`ucaas-sync dlq replay`)."""
