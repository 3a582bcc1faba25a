from dbfixtures import *  # noqa
from e2e import shop  # noqa
from pgfixtures import *  # noqa
