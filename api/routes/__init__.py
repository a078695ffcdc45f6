"""The HTTP routes, one module per resource, each with its Blueprint (registered by :func:`api.app.create_app`)."""
