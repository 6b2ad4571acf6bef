/*
 * Intrusive doubly linked lists over frame indices, shared by the policies:
 * each frame has one prev/next pair, so a frame is on at most one list.
 */
#ifndef LEGATO_EPT_POLICY_LIST_H
#define LEGATO_EPT_POLICY_LIST_H

#include <stdint.h>

#define FL_NONE UINT32_MAX

struct fl_link {
	uint32_t prev, next;
	uint8_t list; /* which list the frame is on; 0: none */
};

struct fl_list {
	uint32_t head, tail; /* head: newest, tail: oldest */
	uint32_t len;
	uint8_t id;
};

static inline void fl_init(struct fl_list *l, uint8_t id)
{
	l->head = l->tail = FL_NONE;
	l->len = 0;
	l->id = id;
}

static inline void fl_push_head(struct fl_list *l, struct fl_link *links, uint32_t f)
{
	links[f].prev = FL_NONE;
	links[f].next = l->head;
	links[f].list = l->id;
	if (l->head != FL_NONE)
		links[l->head].prev = f;
	else
		l->tail = f;
	l->head = f;
	l->len++;
}

static inline void fl_push_tail(struct fl_list *l, struct fl_link *links, uint32_t f)
{
	links[f].prev = l->tail;
	links[f].next = FL_NONE;
	links[f].list = l->id;
	if (l->tail != FL_NONE)
		links[l->tail].next = f;
	else
		l->head = f;
	l->tail = f;
	l->len++;
}

static inline void fl_unlink(struct fl_list *l, struct fl_link *links, uint32_t f)
{
	struct fl_link *k = &links[f];

	if (k->prev != FL_NONE)
		links[k->prev].next = k->next;
	else
		l->head = k->next;
	if (k->next != FL_NONE)
		links[k->next].prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = FL_NONE;
	k->list = 0;
	l->len--;
}

#endif
