"""Data acquisition and validation: `kws data synth|fetch|import|record|validate`.

Every command writes clips as 16 kHz mono 16-bit WAV under `DIR/<label>/` and one `DIR/manifest.csv`
(format in `kws.data.manifest`).
"""
