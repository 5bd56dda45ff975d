"""Pure-PyTorch references of pytal's operators, one module per op
(``pytal.ops.reference.<op>.<op>``): each is the executable specification of its op and the
fallback where the extension has no kernel."""
