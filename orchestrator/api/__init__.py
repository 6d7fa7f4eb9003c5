"""The REST API and the web pages, served by one FastAPI app."""
