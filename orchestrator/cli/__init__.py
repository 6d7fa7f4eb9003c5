"""The `frontdesk` console script: dev stack commands and the REST API client."""
