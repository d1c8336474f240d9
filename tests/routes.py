"""The URL conf, walked: for tests that hold every route to a rule."""


def url_patterns(resolver, prefix=""):
    """(path, view) for every route of the URL conf."""
    for entry in resolver.url_patterns:
        if hasattr(entry, "url_patterns"):
            yield from url_patterns(entry, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry.callback
