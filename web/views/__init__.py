"""Views compute; templates render. One module per group of pages."""
