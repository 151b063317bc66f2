"""Domains: what is specific to one kind of data. Each sub-package implements
:class:`latentsteer.domain.Domain`; the shared engine around them imports none of them
(the registry, :mod:`latentsteer.registry`, loads a domain by name on first use)."""
