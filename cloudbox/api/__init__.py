"""What every service's API shares: the route table, errors, paging, OpenAPI."""
