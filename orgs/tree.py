"""django-mptt's tree manager for the org tree, with moves that rewrite only the rows they change.

django-mptt moves a subtree inside its tree with one UPDATE over *every* row of the tree (``WHERE tree_id = …``),
computing unchanged values for most of them. PostgreSQL writes a new version of each row an UPDATE touches, changed
or not, with an entry in every index of the table, and leaves the old one to VACUUM: a move in a 100k-org tenant
wrote 100k row versions where about a third changed. Here the same move is one UPDATE over the rows whose lft or rght
lies between the subtree's old and new place, which are exactly the rows that change.

Everything else (inserts, deletes, moves between trees or of roots, the admin's positions) is django-mptt's own.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from mptt.exceptions import InvalidMove
from mptt.managers import TreeManager


class OrgTreeManager(TreeManager):
    def _move_child_within_tree(self, node: Any, target: Any, position: str) -> None:
        """Move ``node`` (not a root) next to or into ``target`` in the same tree; ``node``'s tree fields follow."""
        opts = node._mptt_meta
        left, right = getattr(node, opts.left_attr), getattr(node, opts.right_attr)
        level = getattr(node, opts.level_attr)
        tree_id = getattr(node, opts.tree_id_attr)
        target_left, target_right = getattr(target, opts.left_attr), getattr(target, opts.right_attr)
        target_level = getattr(target, opts.level_attr)
        if position not in ("first-child", "last-child", "left", "right"):
            raise ValueError(_("An invalid position was given: %s.") % position)
        relation = "child" if position.endswith("child") else "sibling"
        if node == target:
            raise InvalidMove(_("A node may not be made a %s of itself.") % relation)
        if left < target_left < right:
            raise InvalidMove(_("A node may not be made a %s of any of its descendants.") % relation)

        # ``point``: the number, in today's numbering, in front of which the subtree's first number will stand.
        if position == "last-child":
            point, new_level, parent = target_right, target_level + 1, target
        elif position == "first-child":
            point, new_level, parent = target_left + 1, target_level + 1, target
        elif position == "left":
            point, new_level, parent = target_left, target_level, getattr(target, opts.parent_attr)
        else:
            point, new_level, parent = target_right + 1, target_level, getattr(target, opts.parent_attr)

        width = right - left + 1
        if point > right + 1:  # to the right: the numbers between close up to the left
            shift = point - 1 - right
            others = (right + 1, point - 1, -width)
        elif point < left:  # to the left: the numbers between make room
            shift = point - left
            others = (point, left - 1, width)
        else:  # right where it is (its parent's first or last child already, or next to its own sibling)
            shift = 0
            others = None

        if others is not None:
            self._shift_block(tree_id, (left, right), shift, new_level - level, others, opts)
        setattr(node, opts.left_attr, left + shift)
        setattr(node, opts.right_attr, right + shift)
        setattr(node, opts.level_attr, new_level)
        setattr(node, opts.parent_attr, parent)
        node._mptt_cached_fields[opts.parent_attr] = parent.pk

    def _shift_block(
        self,
        tree_id: int,
        block: tuple[int, int],
        shift: int,
        level_change: int,
        others: tuple[int, int, int],
        opts: Any,
    ) -> None:
        """One UPDATE: the block [lo, hi] moves by ``shift`` (its level by ``level_change``), the numbers in
        ``others`` (lo, hi, by) make room or close up; only rows with a number in either range are written."""
        block_lo, block_hi = block
        others_lo, others_hi, by = others
        span_lo, span_hi = min(block_lo, others_lo), max(block_hi, others_hi)
        connection = self._get_connection()
        qn = connection.ops.quote_name
        meta = self.model._meta
        table = qn(self.tree_model._meta.db_table)
        left = qn(meta.get_field(opts.left_attr).column)
        right = qn(meta.get_field(opts.right_attr).column)
        level = qn(meta.get_field(opts.level_attr).column)
        tree = qn(meta.get_field(opts.tree_id_attr).column)

        def moved(column: str) -> str:
            return (
                f"CASE WHEN {column} BETWEEN %s AND %s THEN {column} + %s "
                f"WHEN {column} BETWEEN %s AND %s THEN {column} + %s ELSE {column} END"
            )

        sql = (
            f"UPDATE {table} SET "  # noqa: S608 - identifiers from the model, values bound
            f"{level} = CASE WHEN {left} BETWEEN %s AND %s THEN {level} + %s ELSE {level} END, "
            f"{left} = {moved(left)}, {right} = {moved(right)} "
            f"WHERE {tree} = %s AND ({left} BETWEEN %s AND %s OR {right} BETWEEN %s AND %s)"
        )
        values = (block_lo, block_hi, shift, others_lo, others_hi, by)
        params = [block_lo, block_hi, level_change, *values, *values, tree_id, span_lo, span_hi, span_lo, span_hi]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
