"""vifscope: is every VM NIC (vif) really plugged where its libvirt definition says?"""

__version__ = "0.1.0"
