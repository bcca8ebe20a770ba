"""Development and test tools (payer simulator, ...). Nothing here is imported by the
production service and none of it is meant to run in production."""
