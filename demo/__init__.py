"""The demo site's own pieces (accounts, page texts); ``demo_app.py`` puts them together."""
