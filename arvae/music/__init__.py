"""Music support: the MeasureVAE token representation, the musical attributes and file conversion.

``tokens`` (vocabulary, grid), ``attributes`` (the four attributes of Appendix A) and ``io`` (MIDI,
MusicXML and ABC in and out). ``io`` imports music21 / pretty_midi lazily.
"""
