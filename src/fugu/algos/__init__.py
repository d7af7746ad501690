"""One module per algorithm; algorithms never import each other."""
