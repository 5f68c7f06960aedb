"""How each world measures its generators: one module per world, used by its chapters.

* :mod:`ganlab.evaluation.digits`: class-conditional digits (chapter 1), measured with the
  digit judge on real held-out digits.
* :mod:`ganlab.evaluation.birds`: text-to-image birds (chapters 2 to 4), one protocol with the
  bird judge and the DAMSM encoders.

A chapter gives the protocol only its ``generate(conditions, seed) -> images`` function; the
protocol draws the conditions, the real reference and the baselines itself, so that every
chapter of a world is measured the same way.
"""
