# How algorithms/score/tasks/basic_math.jsonl was written (2026-12-07): the problems and answers below were written
# by hand for this project; each answer is checked against a computation, then the file is written.
#   python results/score/smollm2-base/check_basic_math.py algorithms/score/tasks/basic_math.jsonl
# Each entry: (id, kind, problem, answer, check) where check is a Python expression that must equal the answer.
from fractions import Fraction as F
import json
rows = [
 # arithmetic word problems
 ("word-01","word","Tom has 12 apples and buys 7 more. How many apples does he have now?","19", 12+7),
 ("word-02","word","A book costs 8 dollars. How much do 6 books cost, in dollars?","48", 8*6),
 ("word-03","word","There are 45 students split equally into 5 groups. How many students are in each group?","9", 45//5),
 ("word-04","word","Sara had 50 stickers and gave away 18. How many stickers does she have left?","32", 50-18),
 ("word-05","word","A train travels 60 kilometres per hour for 3 hours. How many kilometres does it travel?","180", 60*3),
 ("word-06","word","A box holds 24 pencils. How many pencils are in 4 boxes?","96", 24*4),
 ("word-07","word","Mia reads 15 pages a day. How many pages does she read in 7 days?","105", 15*7),
 ("word-08","word","A farmer has 3 pens with 14 sheep each and sells 10 sheep. How many sheep are left?","32", 3*14-10),
 ("word-09","word","A ticket costs 12 dollars. How many tickets can be bought with 100 dollars?","8", 100//12),
 ("word-10","word","Ben is 9 years old. His father is 4 times as old. How old is his father?","36", 9*4),
 ("word-11","word","A shop sells 125 cups on Monday and 87 cups on Tuesday. How many cups does it sell on the two days together?","212", 125+87),
 ("word-12","word","A rope 90 centimetres long is cut into 6 equal pieces. How long is each piece, in centimetres?","15", 90//6),
 ("word-13","word","Anna saves 5 dollars a week. How many weeks does she need to save 65 dollars?","13", 65//5),
 ("word-14","word","A class has 28 students and 3 teachers. Each needs 2 sheets of paper. How many sheets are needed?","62", (28+3)*2),
 ("word-15","word","A bus has 40 seats. 27 are taken. How many seats are free?","13", 40-27),
 ("word-16","word","Eggs come in cartons of 12. How many cartons are needed for 150 eggs?","13", -(-150//12)),
 ("word-17","word","A rectangle is 9 metres long and 7 metres wide. What is its area, in square metres?","63", 9*7),
 ("word-18","word","A rectangle is 11 centimetres long and 4 centimetres wide. What is its perimeter, in centimetres?","30", 2*(11+4)),
 ("word-19","word","Leo buys 3 pens at 2 dollars each and a notebook at 5 dollars. How much does he spend, in dollars?","11", 3*2+5),
 ("word-20","word","A car uses 6 litres of fuel per 100 kilometres. How many litres does it use for 350 kilometres?","21", 6*350//100),
 ("word-21","word","A pizza has 8 slices. 3 friends eat 2 slices each. How many slices are left?","2", 8-3*2),
 ("word-22","word","The temperature was -4 degrees and rose by 11 degrees. What is the temperature now, in degrees?","7", -4+11),
 ("word-23","word","What is 15% of 80?","12", F(15,100)*80),
 ("word-24","word","A shirt costs 40 dollars and is sold at 25% off. What is the sale price, in dollars?","30", 40*F(75,100)),
 ("word-25","word","What is the average of 4, 8, 10 and 18?","10", F(4+8+10+18,4)),
 # plain arithmetic
 ("arith-01","arithmetic","Compute 237 + 485.","722", 237+485),
 ("arith-02","arithmetic","Compute 1000 - 387.","613", 1000-387),
 ("arith-03","arithmetic","Compute 23 \\times 17.","391", 23*17),
 ("arith-04","arithmetic","Compute 144 \\div 12.","12", 144//12),
 ("arith-05","arithmetic","Compute 7 \\times 8 - 6.","50", 7*8-6),
 ("arith-06","arithmetic","Compute (3 + 5) \\times 4.","32", (3+5)*4),
 ("arith-07","arithmetic","Compute 2^{10}.","1024", 2**10),
 ("arith-08","arithmetic","Compute 81 - 9 \\times 7.","18", 81-9*7),
 ("arith-09","arithmetic","Compute -12 + 30 - 5.","13", -12+30-5),
 ("arith-10","arithmetic","Compute 0.5 + 0.25.","0.75", F(1,2)+F(1,4)),
 ("arith-11","arithmetic","What is the remainder when 100 is divided by 7?","2", 100%7),
 ("arith-12","arithmetic","What is the greatest common divisor of 36 and 48?","12", 12),
 ("arith-13","arithmetic","What is the least common multiple of 4 and 6?","12", 12),
 ("arith-14","arithmetic","Compute 12^2 - 10^2.","44", 144-100),
 ("arith-15","arithmetic","What is the sum of the integers from 1 to 20?","210", sum(range(1,21))),
 # fractions
 ("frac-01","fractions","Compute \\frac{1}{2} + \\frac{1}{3}. Give the answer as a fraction in lowest terms.","\\frac{5}{6}", F(1,2)+F(1,3)),
 ("frac-02","fractions","Compute \\frac{3}{4} - \\frac{1}{8}. Give the answer as a fraction in lowest terms.","\\frac{5}{8}", F(3,4)-F(1,8)),
 ("frac-03","fractions","Compute \\frac{2}{3} \\times \\frac{9}{10}. Give the answer as a fraction in lowest terms.","\\frac{3}{5}", F(2,3)*F(9,10)),
 ("frac-04","fractions","Compute \\frac{5}{6} \\div \\frac{5}{12}.","2", F(5,6)/F(5,12)),
 ("frac-05","fractions","Simplify \\frac{18}{24}.","\\frac{3}{4}", F(18,24)),
 ("frac-06","fractions","What is \\frac{3}{5} of 40?","24", F(3,5)*40),
 ("frac-07","fractions","Compute \\frac{1}{4} + \\frac{1}{4} + \\frac{1}{4}. Give the answer as a fraction.","\\frac{3}{4}", 3*F(1,4)),
 ("frac-08","fractions","Compute 2 - \\frac{3}{7}. Give the answer as a fraction in lowest terms.","\\frac{11}{7}", 2-F(3,7)),
 ("frac-09","fractions","Write 0.375 as a fraction in lowest terms.","\\frac{3}{8}", F(3,8)),
 ("frac-10","fractions","A cake is cut into 12 equal slices and 4 are eaten. What fraction of the cake is left, in lowest terms?","\\frac{2}{3}", F(8,12)),
 ("frac-11","fractions","Compute \\frac{7}{10} + \\frac{2}{5}. Give the answer as a fraction in lowest terms.","\\frac{11}{10}", F(7,10)+F(2,5)),
 ("frac-12","fractions","Compute \\frac{4}{9} \\times 27.","12", F(4,9)*27),
 # simple algebra
 ("alg-01","algebra","Solve for x: x + 7 = 15.","8", 8),
 ("alg-02","algebra","Solve for x: 3x = 27.","9", 9),
 ("alg-03","algebra","Solve for x: 2x + 5 = 17.","6", F(17-5,2)),
 ("alg-04","algebra","Solve for x: 5x - 3 = 22.","5", F(22+3,5)),
 ("alg-05","algebra","Solve for x: \\frac{x}{4} = 6.","24", 24),
 ("alg-06","algebra","Solve for x: 4x + 1 = 2x + 9.","4", F(9-1,4-2)),
 ("alg-07","algebra","Solve for x: 3(x - 2) = 12.","6", F(12,3)+2),
 ("alg-08","algebra","If y = 2x + 3 and x = 5, what is y?","13", 2*5+3),
 ("alg-09","algebra","Solve for x: 7 - x = 2.","5", 7-2),
 ("alg-10","algebra","Solve for x: 2x = 7. Give the answer as a fraction.","\\frac{7}{2}", F(7,2)),
 ("alg-11","algebra","The sum of two consecutive integers is 41. What is the smaller integer?","20", (41-1)//2),
 ("alg-12","algebra","What is the value of x^2 + 2x when x = 3?","15", 9+6),
 ("alg-13","algebra","Solve for x: 6x - 4 = 3x + 11.","5", F(11+4,6-3)),
 ("alg-14","algebra","A number doubled and then increased by 4 is 30. What is the number?","13", F(30-4,2)),
 ("alg-15","algebra","What is the slope of the line through the points (1, 2) and (3, 8)?","3", F(8-2,3-1)),
]
import sys
from armillary.algorithms.score.tasks.math_answers import answers_match
ids=set()
for rid, kind, prob, ans, check in rows:
    assert rid not in ids; ids.add(rid)
    assert answers_match(str(F(check)) if not isinstance(check,int) else str(check), ans), (rid, ans, check)
out = sys.argv[1]
with open(out, "w") as f:
    for rid, kind, prob, ans, check in rows:
        f.write(json.dumps({"id": rid, "kind": kind, "problem": prob, "answer": ans, "split": "test"}) + "\n")
print(len(rows), {k: sum(r[1]==k for r in rows) for k in ("word","arithmetic","fractions","algebra")})
