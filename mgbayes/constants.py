"""Physical constants used across mgbayes, in SI units.

The electrochemical values are those of ``docs/physics.md`` (the paper's);
the tunnelling constants are CODATA 2018 (exact where SI fixes them).
"""

#: Faraday constant [C mol^-1].
F = 96485.332

#: Molar gas constant [J mol^-1 K^-1].
R_GAS = 8.314

#: Room temperature of the measurements [K].
T_ROOM = 298.15

#: Vacuum permittivity [F m^-1].
EPS0 = 8.854e-12

#: Electrons transferred per Mg2+ ion [1].
N_MG = 2

#: Elementary charge [C] (exact).
E_CHARGE = 1.602176634e-19

#: Planck constant [J s] (exact).
H_PLANCK = 6.62607015e-34

#: Electron rest mass [kg].
M_ELECTRON = 9.1093837015e-31
