"""sedbench: a grid-search and benchmark harness for polyphonic sound event detection.

Reproduces and extends Cakir et al., "Convolutional Recurrent Neural Networks for
Polyphonic Sound Event Detection", IEEE/ACM TASLP 2017. Data flows one way:
audio -> features -> sequences -> model -> activity -> metrics -> tracking -> report.
"""

__version__ = "0.1.0"
