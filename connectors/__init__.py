"""The built-in connectors, one package per spoke, each registered through entry points exactly
as a third party's package would be (``ledgerhub.connectors``; the accounting targets
``beancount`` and ``xero`` under ``ledgerhub.targets``). They import only ``hub.spi``,
``hub.domain`` and ``hub.errors``."""
