"""Administration of a company by its administrators (declarants, habilitations,
administrators), free of any web framework: the pages and the JSON admin API call
these functions. Every change checks the actor through :mod:`.access` (after locking
the company, :mod:`.roles`); the lists and matrices are read after the caller checked
the actor with :func:`.access.require_admin`.
"""

from rcd_store.administration.access import Forbidden, admin_company_ids, require_admin
from rcd_store.administration.invitations import (
    Invitation,
    accept_invitation,
    invitation_for,
    invite_declarant,
)
from rcd_store.administration.listing import (
    DeclarantRow,
    EstablishmentRow,
    Page,
    list_declarants,
    list_establishments,
)
from rcd_store.administration.matrix import (
    Change,
    Column,
    Matrix,
    declarant_matrix,
    establishment_matrix,
    set_habilitations,
)
from rcd_store.administration.members import (
    add_admin,
    correct_names,
    hand_over,
    reactivate_declarant,
    remove_admin,
    remove_declarant,
    suspend_declarant,
)

__all__ = [
    "Change",
    "Column",
    "DeclarantRow",
    "EstablishmentRow",
    "Forbidden",
    "Invitation",
    "Matrix",
    "Page",
    "accept_invitation",
    "add_admin",
    "admin_company_ids",
    "correct_names",
    "declarant_matrix",
    "establishment_matrix",
    "hand_over",
    "invitation_for",
    "invite_declarant",
    "list_declarants",
    "list_establishments",
    "reactivate_declarant",
    "remove_admin",
    "remove_declarant",
    "require_admin",
    "set_habilitations",
    "suspend_declarant",
]
