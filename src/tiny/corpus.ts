/**
 * A short English text from which generated models learn their BPE merges.
 * Its only job is to give the vocabulary realistic multi-byte tokens.
 */
export const TINY_CORPUS = `The river ran past the old mill, and the children of the village
walked along its bank every morning on the way to school. In the spring the
water was high and brown; in the summer it was low and clear, and you could
see the stones at the bottom and the small fish that hid between them.
The teacher said that a river is never the same river twice, because the
water that you see today is not the water that you saw yesterday. The
children thought about this for a long time. One of them asked whether a
person is the same person from one day to the next, and the teacher smiled
and said that this was a very good question, and that people had been
asking it for more than two thousand years.
When the mill stopped working, the town turned it into a library. There were
books about rivers and mountains, about the stars and the sea, about numbers
and machines, and about the people who had lived in the valley long before
the village was built. On rainy days the children read there until the
lights came on in the evening, and then they walked home in the dark,
listening to the water.
"What will you be when you grow up?" asked the old librarian. "A sailor,"
said one. "A doctor," said another. "I want to build machines that think,"
said the third, "so that they can answer every question." The librarian
laughed. "Then you will have to teach them to ask good questions first."
Numbers: 1, 2, 3, 10, 42, 100, 2048. Symbols: (a + b) * c = d; x[i] -> y[j].
`;
