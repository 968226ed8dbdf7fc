"""The MAC pool store: a SQL database (embedded SQLite, or PostgreSQL shared by many hosts).

I/O layer beside ``sources``: it imports only ``vifscope.model`` (and SQLAlchemy/Alembic).
``url``: which database; ``engine``: connecting and migrating; ``tables``: the schema;
``pools`` / ``alloc``: the transactions.
"""
