"""LF sources the HTTP and round tests register: keyword LFs over the "great"/"awful" test items."""

GREAT_AWFUL_LFS = '''
from snorkel.labeling import labeling_function

@labeling_function()
def says_great(x):
    return 1 if "great" in x.text else -1

@labeling_function()
def says_awful(x):
    return 0 if "awful" in x.text else -1
'''
