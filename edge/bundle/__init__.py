"""Bundles: the manifest, byte-level verification and the station memory plan."""
