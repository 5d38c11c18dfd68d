class OutOfMemoryError(MemoryError): pass
