"""cli: the ``zoning`` command line. Parses arguments and displays results; computes nothing itself."""
