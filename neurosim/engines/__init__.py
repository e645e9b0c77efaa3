"""Engines: the protocol every engine offers and the registry that builds them."""
