"""Accounting sync: targets (``target``, ``beancount``) and the sender that pushes the
``accounting`` projection's documents to them (``sender``)."""
