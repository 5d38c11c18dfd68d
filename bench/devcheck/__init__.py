"""The device check's sections, one module per kind (``bench/device_check.py`` runs them, each in a process of its
own). Each section is a function decorated with ``common.section(name)``; ``PLAN`` in the driver orders them."""
