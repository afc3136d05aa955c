"""Component boundaries, written down: the APIs roles offer each other and the
plain data that crosses them."""
