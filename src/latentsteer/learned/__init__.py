"""Your own property: a table of measured samples becomes a head on the model's code and an
independent learned oracle in data space, so the property is a goal like any built-in one.

* :mod:`.table` — the user's table, validated (:class:`PropertyTable`);
* :mod:`.card` — what a fitted property records (:class:`PropertyCard`) and the
  :class:`PropertyOracle` protocol a domain's learned oracle follows;
* :mod:`.head` — a regression head fitted on the codes of the table's samples;
* :mod:`.fit` — the whole ``fit-property`` step, writing a new model folder.
"""
