"""What every front end shows: status/networks documents, findings, topology, tables. Pure."""
