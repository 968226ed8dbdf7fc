"""The join: each declared vif (libvirt XML) against what the kernel and OVSDB hold -> one verdict. Pure."""
