"""Adapters that check gradients of code written for other frameworks (PyTorch).

Each adapter lives in its own subpackage and imports its framework; importing
`precision_nn` imports none of them.
"""
