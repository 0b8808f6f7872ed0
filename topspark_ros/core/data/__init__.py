"""
Data sources: where training and measurement images come from.

Every command names its data the same way (``--data SPEC``, see :mod:`.sources`): the IDX
files of the MNIST family, CIFAR batches, the project's digit and synthetic event sets, and a
robot's own image folders.
"""
