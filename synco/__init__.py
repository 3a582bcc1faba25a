"""synco: the client side."""
