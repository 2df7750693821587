"""A Django Channels project: Django's views over HTTP, consumers over websockets."""
