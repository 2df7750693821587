"""One small app per framework, each with the routes of `routes.py`, set up as its users would."""
