"""ISO 4217 currencies: the codes a revenue may be given in, their decimals and signs.

An event's revenue (``$`` or ``revenue`` of the Events API) is kept only in one of
these currencies, as Plausible keeps it; codes are upper case. Funds codes, precious
metals and test codes (``XAU``, ``XTS``...) are not currencies a shop charges in.
"""

from __future__ import annotations

# Code and minor units (digits after the decimal point), grouped by minor units.
_ZERO = ("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF")
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN "
    "ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES "
    "KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK "
    "MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR "
    "SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD "
    "TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)

MINOR_UNITS: dict[str, int] = {
    code: digits
    for codes, digits in ((_ZERO, 0), (_TWO, 2), (_THREE, 3), (_FOUR, 4))
    for code in codes.split()
}
CURRENCIES: frozenset[str] = frozenset(MINOR_UNITS)

# How an English-language page writes the common ones; any other is written by its code.
SYMBOLS: dict[str, str] = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪",
    "VND": "₫", "NGN": "₦", "PHP": "₱", "UAH": "₴", "CNY": "CN¥", "CAD": "CA$", "AUD": "A$",
    "NZD": "NZ$", "HKD": "HK$", "MXN": "MX$", "BRL": "R$", "TWD": "NT$", "XAF": "FCFA",
    "XOF": "F\u202fCFA", "XCD": "EC$", "XPF": "CFPF",
}
