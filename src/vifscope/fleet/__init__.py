"""``vifscope fleet``: one view over many hosts' agents (``vifscope serve``).

The inventory names the agents; ``sources.agents`` asks them all at once (the only HTTP
code); ``merge`` joins their answers into one document with a ``host`` on every vif and
finding; ``checks`` adds what no single host can see (a MAC on two hosts, version skew, a
host that does not answer).
"""
