"""One module per feature: plain functions, a request in, values out."""
