"""``vifscope apply`` / ``export``: host bridges and libvirt networks declared in a file.

``load``: the file → a Desired (validated against the shipped JSON Schema). ``plan``: a
Desired and the host's state → ordered changes (pure). ``run``: checkpoint → apply →
verify → roll back. ``export``: the host (or the checkpoint) as a file. ``docs``: what
the front end prints.
"""
