"""Pure desk policy: windows, closed days, session types, slots, booking validation, lifecycle.

Nothing in this package reads the clock or does I/O: the daemon passes ``now``, the
policy and busy time in, and gets decisions back.
"""
