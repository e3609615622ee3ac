"""One module per store, each the only importer of its SDK; `fetchers.registry` names them."""
