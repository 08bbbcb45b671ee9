"""The daemon's HTTP side: JSON API, pages and feeds on a small WSGI toolkit."""
