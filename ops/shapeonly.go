package ops

// Ops whose shapes shapeinfer knows (so `mtlrun inspect --shapes` describes
// models that use them) but which no kernel runs yet. Giving one a kernel
// means moving its line into the family file that gets the kernel, with a
// gradient rule or waiver.
func init() {
	const reason = "no kernel yet: the shape rule lets inspect --shapes describe models that use it"
	noGrad := NotDifferentiable("no kernel")
	for _, op := range []string{
		// rules in shapeinfer
		"GridSample", "NonMaxSuppression",
	} {
		Define(Desc{Type: op, Since: 1, NoKernel: reason, Grad: noGrad})
	}
}
