"""The web adapter: Flask blueprints that only translate HTTP."""
